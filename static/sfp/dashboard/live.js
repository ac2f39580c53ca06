/* The dashboard's live connection to /sfp/ws (protocol: apps/live/events.py).
 *
 * One WebSocket per page, authenticated by the login session cookie (same origin). After the
 * server's `ready`, the page's subscriptions are sent; they are asked for again on every
 * reconnect, so a subscription can compute its message then (a task page asks for the log lines
 * after the last one it shows). A closed socket is reopened with exponential backoff and jitter;
 * 4401/4403 (signed out, no role) stop it.
 *
 * `SeqTracker` keeps, per object, the last event sequence number applied: an event whose `seq` is
 * at or below it is stale (already applied, or overtaken) and is ignored. Events without `seq`
 * are always applied.
 */
(function () {
  "use strict";

  var MIN_DELAY_MS = 500;
  var MAX_DELAY_MS = 15000;
  var CLOSE_UNAUTHENTICATED = 4401;
  var CLOSE_FORBIDDEN = 4403;

  function socketUrl() {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/sfp/ws";
  }

  function showStatus(text, connected) {
    var element = document.querySelector("[data-live-status]");
    if (!element) return;
    element.textContent = text;
    element.classList.toggle("connected", connected);
  }

  /* options.subscriptions(): the subscribe messages to send now; options.onEvent(message). */
  function connect(options) {
    var failures = 0;
    var socket = null;
    var stopped = false;

    function open() {
      showStatus(failures ? "reconnecting…" : "connecting…", false);
      socket = new WebSocket(socketUrl());
      socket.onmessage = function (frame) {
        var message;
        try {
          message = JSON.parse(frame.data);
        } catch (error) {
          return;
        }
        if (message.event === "ready") {
          failures = 0;
          showStatus("live", true);
          options.subscriptions().forEach(function (subscription) {
            socket.send(JSON.stringify(subscription));
          });
        } else if (message.event === "error") {
          console.warn("sfp live:", message.message);
        } else {
          options.onEvent(message);
        }
      };
      socket.onclose = function (event) {
        if (stopped) return;
        if (event.code === CLOSE_UNAUTHENTICATED || event.code === CLOSE_FORBIDDEN) {
          showStatus("signed out: reload the page", false);
          return;
        }
        var backoff = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * Math.pow(2, failures));
        failures += 1;
        showStatus("reconnecting…", false);
        setTimeout(open, backoff * (0.75 + Math.random() * 0.5));
      };
    }

    window.addEventListener("pagehide", function () {
      stopped = true;
      if (socket) socket.close();
    });
    window.addEventListener("pageshow", function (event) {
      if (event.persisted) {
        stopped = false;
        open();
      }
    });
    open();
  }

  function SeqTracker() {
    this.last = new Map();
  }

  /* True when the event should be applied (and remembers its seq); false when it is stale. */
  SeqTracker.prototype.accept = function (key, seq) {
    if (typeof seq !== "number") return true;
    if (seq <= (this.last.get(key) || 0)) return false;
    this.last.set(key, seq);
    return true;
  };

  /* Start again from a state rendered by the server at `seq` (0: unknown, accept anything). */
  SeqTracker.prototype.reset = function (key, seq) {
    if (seq > 0) this.last.set(key, seq);
    else this.last.delete(key);
  };

  SeqTracker.prototype.forget = function (prefix) {
    var tracker = this;
    Array.from(this.last.keys()).forEach(function (key) {
      if (key.indexOf(prefix) === 0) tracker.last.delete(key);
    });
  };

  window.SfpLive = { connect: connect, SeqTracker: SeqTracker };
})();
