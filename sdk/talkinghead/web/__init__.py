"""`talkinghead serve`: a local web app and HTTP API (the ``[web]`` extra: FastAPI on uvicorn).

Layout: ``limits`` (the server's bounds, one dataclass), ``sniff`` (file types from their bytes),
``store`` (avatars and jobs in per-item temporary folders, a bounded job queue, expiry), ``app``
(the FastAPI routes and the live WebSocket), ``static/`` (the page: plain HTML and JavaScript, no
build step, no CDN).
"""
