/* The dashboard pages' live behaviour, chosen by <body data-page>.
 *
 * Pages are rendered by the server; events from /sfp/ws (see live.js) update them in place. When
 * a page (re)subscribes, it fetches its fragment again (events may have been missed before the
 * subscription or while disconnected) and re-applies the events that arrived during that fetch,
 * so nothing older than the fetched state survives and nothing newer is lost. Rows and summaries
 * carry the `data-seq` they were rendered at, when the server knows it.
 */
(function () {
  "use strict";

  var MAX_TASK_ROWS = 150;
  var MAX_LOG_LINES = 5000;
  var TERMINAL = ["completed", "failed", "cancelled"];
  var seqs = new SfpLive.SeqTracker();

  function seqOf(element) {
    var value = element ? parseInt(element.getAttribute("data-seq"), 10) : NaN;
    return isNaN(value) ? 0 : value;
  }

  function byOperationId(root, operationId) {
    return root.querySelector('[data-operation-id="' + CSS.escape(operationId) + '"]');
  }

  function showLocalTimes(root) {
    root.querySelectorAll("time[data-local]").forEach(function (element) {
      var when = new Date(element.getAttribute("datetime"));
      if (!isNaN(when)) element.textContent = when.toLocaleString();
    });
  }

  /* GET a fragment; null for 204. A session that ended sends the page to the login form. */
  function fetchFragment(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (response) {
      if (response.redirected && new URL(response.url).pathname === "/login") {
        location.reload();
        throw new Error("signed out");
      }
      if (response.status === 204) return null;
      if (!response.ok) throw new Error(url + " answered " + response.status);
      return response.text();
    });
  }

  /* Re-fetches `container`'s fragment; events recorded while a fetch is in flight are handed to
   * `afterSwap(replay)` to be applied again on top of the fetched state. */
  function fragmentRefresher(container, url, afterSwap) {
    var inFlight = false;
    var again = false;
    var replay = [];
    function refresh() {
      if (inFlight) {
        again = true;
        return;
      }
      inFlight = true;
      replay = [];
      fetchFragment(url)
        .then(function (html) {
          if (html !== null) afterSwap(html, replay);
        })
        .catch(function (error) {
          console.warn("sfp dashboard:", error.message);
        })
        .finally(function () {
          inFlight = false;
          if (again) {
            again = false;
            refresh();
          }
        });
    }
    return {
      refresh: refresh,
      record: function (message) {
        if (inFlight) replay.push(message);
      },
    };
  }

  // --- task state: a status badge, a progress bar and a current step inside `scope` ----------

  function showProgress(scope, value) {
    var bar = scope.querySelector('[data-field="progress"]');
    if (!bar) return;
    bar.setAttribute("aria-valuenow", value);
    bar.querySelector(".fill").style.width = value + "%";
    bar.querySelector(".label").textContent = value + "%";
  }

  function showStatus(scope, status) {
    var badge = scope.querySelector('[data-field="status"]');
    if (badge) {
      badge.textContent = status;
      badge.className = "badge status-" + status;
    }
    if (status === "completed") showProgress(scope, 100);
  }

  function showStep(scope, step) {
    var element = scope.querySelector('[data-field="step"]');
    if (element) element.textContent = step || "";
  }

  function isTaskState(message) {
    return ["task.snapshot", "task.status", "task.progress"].indexOf(message.event) >= 0;
  }

  function showTaskState(scope, message) {
    var payload = message.payload;
    if (message.event === "task.status") {
      showStatus(scope, payload.status);
    } else if (message.event === "task.progress") {
      if (payload.progress !== null && payload.progress !== undefined) {
        showProgress(scope, payload.progress);
      }
      if (payload.currentStep !== null && payload.currentStep !== undefined) {
        showStep(scope, payload.currentStep);
      }
    } else if (message.event === "task.snapshot") {
      showProgress(scope, payload.progress);
      showStatus(scope, payload.status);
      showStep(scope, payload.currentStep);
    }
  }

  /* Follow a feed: re-fetch the page's fragment whenever the (re)subscription is confirmed (events
   * may have been missed meanwhile), record events for replay while it is in flight, apply them. */
  function followFeed(object, refresher, apply) {
    SfpLive.connect({
      subscriptions: function () {
        return [{ action: "subscribe", object: object }];
      },
      onEvent: function (message) {
        if (message.event === "subscribed") {
          refresher.refresh();
          return;
        }
        refresher.record(message);
        apply(message);
      },
    });
  }

  // --- overview: the task table --------------------------------------------------------------

  function overviewPage() {
    var rows = document.getElementById("task-rows");
    var notListed = new Set(); // gates: the feed carries them, the table does not
    var fetchingRow = new Set();
    var heldForRow = new Map(); // events of a task whose row is being fetched

    function trackRenderedRows() {
      rows.querySelectorAll("tr[data-operation-id]").forEach(function (row) {
        seqs.reset("task:" + row.getAttribute("data-operation-id"), seqOf(row));
      });
    }

    function insertRow(html) {
      var holder = document.createElement("tbody");
      holder.innerHTML = html.trim();
      var row = holder.querySelector("tr[data-operation-id]");
      var placeholder = rows.querySelector("tr.empty");
      if (placeholder) placeholder.remove();
      rows.insertBefore(row, rows.firstChild);
      row.classList.add("arrived");
      while (rows.children.length > MAX_TASK_ROWS) rows.lastElementChild.remove();
      seqs.reset("task:" + row.getAttribute("data-operation-id"), seqOf(row));
    }

    function fetchRow(operationId) {
      if (fetchingRow.has(operationId)) return;
      fetchingRow.add(operationId);
      var url = rows.getAttribute("data-row-url").replace("OPERATION_ID", operationId);
      fetchFragment(url)
        .then(function (html) {
          if (html === null) {
            notListed.add(operationId);
          } else if (!byOperationId(rows, operationId)) {
            insertRow(html);
          }
          var held = heldForRow.get(operationId) || [];
          heldForRow.delete(operationId);
          held.forEach(apply);
        })
        .catch(function (error) {
          console.warn("sfp dashboard:", error.message);
        })
        .finally(function () {
          fetchingRow.delete(operationId);
        });
    }

    function apply(message) {
      var operationId = message.payload && message.payload.operationId;
      if (!operationId || !isTaskState(message) || notListed.has(operationId)) return;
      var row = byOperationId(rows, operationId);
      if (!row) {
        if (!heldForRow.has(operationId)) heldForRow.set(operationId, []);
        heldForRow.get(operationId).push(message);
        fetchRow(operationId);
        return;
      }
      if (seqs.accept("task:" + operationId, message.seq)) showTaskState(row, message);
    }

    var refresher = fragmentRefresher(rows, rows.getAttribute("data-fragment-url"), function (
      html,
      replay
    ) {
      rows.innerHTML = html;
      trackRenderedRows();
      replay.forEach(apply);
    });

    trackRenderedRows();
    followFeed("tasks", refresher, apply);
  }

  // --- one task: its summary and its log -----------------------------------------------------

  function taskPage() {
    var operationId = document.body.getAttribute("data-operation-id");
    var key = "task:" + operationId;
    var summary = document.getElementById("task-summary");
    var log = document.getElementById("log");
    var lastLineSeq = parseInt(document.body.getAttribute("data-last-line-seq"), 10) || 0;

    function appendLines(lines) {
      var atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
      lines.forEach(function (line) {
        if (line.seq <= lastLineSeq) return;
        lastLineSeq = line.seq;
        var item = document.createElement("li");
        item.setAttribute("data-seq", line.seq);
        item.className = "stream-" + line.stream;
        var when = document.createElement("time");
        when.setAttribute("datetime", line.timestamp);
        when.textContent = (line.timestamp || "").slice(11, 19);
        var text = document.createElement("span");
        text.className = "line";
        text.textContent = line.message;
        item.append(when, text);
        log.appendChild(item);
      });
      while (log.children.length > MAX_LOG_LINES) log.firstElementChild.remove();
      if (atBottom) log.scrollTop = log.scrollHeight;
    }

    function applyState(message) {
      if (!seqs.accept(key, message.seq)) return;
      showTaskState(summary, message);
      var status = message.payload.status;
      // The error and the finish time are not in the events: read them once the task is over.
      if (message.event === "task.status" && TERMINAL.indexOf(status) >= 0) {
        refresher.refresh();
        var cancel = document.querySelector(".cancel-form");
        if (cancel) cancel.remove(); // nothing left to cancel
      }
    }

    var summaryUrl = document.body.getAttribute("data-summary-url");
    var refresher = fragmentRefresher(summary, summaryUrl, function (html, replay) {
      summary.innerHTML = html;
      seqs.reset(key, seqOf(summary.querySelector(".summary")));
      replay.forEach(function (message) {
        if (seqs.accept(key, message.seq)) showTaskState(summary, message);
      });
    });

    seqs.reset(key, seqOf(summary.querySelector(".summary")));
    log.scrollTop = log.scrollHeight;
    SfpLive.connect({
      subscriptions: function () {
        return [{ action: "subscribe", object: "task", id: operationId, since: lastLineSeq }];
      },
      onEvent: function (message) {
        var payload = message.payload || {};
        if (payload.operationId !== operationId) return;
        if (message.event === "task.log") {
          appendLines(payload.lines || []);
        } else if (isTaskState(message)) {
          refresher.record(message);
          applyState(message);
        }
      },
    });
  }

  // --- the lock board ------------------------------------------------------------------------

  function locksPage() {
    var board = document.getElementById("lock-board");

    // `payload` is the one lock-state shape (apps/environments/selectors/locks.py,
    // lock_state_dto): {isLocked, currentLock: {lockedBy, lockReason, expiresAt, …} | null,
    // queuedLocks: [{position, requestedBy, …}]}.
    function showLock(row, payload) {
      var current = payload.currentLock || {};
      row.querySelector('[data-field="state"]').innerHTML = payload.isLocked
        ? '<span class="badge locked">locked</span>'
        : '<span class="badge free">free</span>';
      var holder = row.querySelector('[data-field="holder"]');
      holder.textContent = current.lockedBy || "";
      if (current.lockReason) {
        var reason = document.createElement("small");
        reason.className = "muted";
        reason.textContent = " " + current.lockReason;
        holder.appendChild(reason);
      }
      var expires = row.querySelector('[data-field="expires"]');
      expires.textContent = "";
      if (current.expiresAt) {
        var when = document.createElement("time");
        when.setAttribute("datetime", current.expiresAt);
        when.setAttribute("data-local", "");
        expires.appendChild(when);
        showLocalTimes(expires);
      }
      var queue = row.querySelector('[data-field="queue"]');
      queue.textContent = "";
      (payload.queuedLocks || []).forEach(function (waiting) {
        var chip = document.createElement("span");
        chip.className = "chip";
        chip.textContent = waiting.requestedBy;
        queue.appendChild(chip);
      });
    }

    var unlisted = new Set(); // resources with no row, already looked up once

    function apply(message, replaying) {
      if (message.event !== "environment.lock") return;
      var payload = message.payload;
      if (!seqs.accept("lock:" + payload.repository + " " + payload.resource, message.seq)) return;
      var selector =
        'tr[data-repository="' + CSS.escape(payload.repository) + '"]' +
        '[data-resource="' + CSS.escape(payload.resource) + '"]';
      var rows = board.querySelectorAll(selector);
      rows.forEach(function (row) {
        showLock(row, payload);
      });
      var key = payload.repository + " " + payload.resource;
      if (rows.length && !replaying && board.hasAttribute("data-may-release")) {
        refresher.refresh(); // owners' Release buttons name the holder's ticket: redraw them
      }
      if (!rows.length && !replaying && !unlisted.has(key)) {
        unlisted.add(key); // perhaps an environment created after the page loaded: look once
        refresher.refresh();
      }
    }

    var refresher = fragmentRefresher(board, board.getAttribute("data-fragment-url"), function (
      html,
      replay
    ) {
      board.innerHTML = html;
      showLocalTimes(board);
      seqs.forget("lock:"); // the board carries no sequence numbers: replay what came meanwhile
      replay.forEach(function (message) {
        apply(message, true);
      });
    });

    showLocalTimes(board);
    followFeed("locks", refresher, apply);
  }

  // --- pipelines -----------------------------------------------------------------------------

  function pipelinesPage() {
    var list = document.getElementById("pipelines");
    var timer = null;
    // Every render carries fresh CSRF tokens; they do not make the content different.
    function comparable(html) {
      return html.replace(/name="csrfmiddlewaretoken" value="[^"]*"/g, "").replace(/\s+/g, " ");
    }

    var refresher = fragmentRefresher(list, list.getAttribute("data-fragment-url"), function (
      html
    ) {
      if (comparable(html).trim() === comparable(list.innerHTML).trim()) return;
      var typing = list.contains(document.activeElement) &&
        document.activeElement.tagName === "INPUT";
      if (typing) {
        // Never swap a form from under someone writing a comment: once they leave it.
        list.addEventListener("focusout", scheduleRefresh, { once: true });
        return;
      }
      list.innerHTML = html;
    });

    function scheduleRefresh() {
      if (timer) return;
      timer = setTimeout(function () {
        timer = null;
        refresher.refresh();
      }, 250);
    }

    function concerns(message) {
      var operationId = message.payload && message.payload.operationId;
      if (message.event === "pipeline.gate" || message.event === "subscribed") return true;
      // A status change of a task not shown may be a new pipeline or a new step.
      if (message.event === "task.status") return true;
      return isTaskState(message) && operationId && !!byOperationId(list, operationId);
    }

    SfpLive.connect({
      subscriptions: function () {
        return [{ action: "subscribe", object: "tasks" }];
      },
      onEvent: function (message) {
        if (concerns(message)) scheduleRefresh();
      },
    });
  }

  var pages = {
    overview: overviewPage,
    task: taskPage,
    locks: locksPage,
    pipelines: pipelinesPage,
  };
  var page = pages[document.body.getAttribute("data-page")];
  if (page) page();
})();
