"""The live dashboard at `/`: server-rendered pages for people (login session), updated in the
browser from the `/sfp/ws` socket. It reads and writes only through the domain apps' selectors
and services, so it shows and does nothing the API would not."""
