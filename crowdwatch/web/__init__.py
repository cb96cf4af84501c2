"""The live view of ``crowdwatch run``: what each camera sees, its counts, and a shape editor.

- :mod:`~crowdwatch.web.hub`: the latest result per camera, each frame JPEG-encoded at most once and
  shared by every viewer, and a 30-minute ring of counts per camera;
- :mod:`~crowdwatch.web.sink`: the sink that feeds the hub from the pipeline's sink thread;
- :mod:`~crowdwatch.web.validate`: the stateless check of an edited camera block against the real schema;
- :mod:`~crowdwatch.web.server`: the HTTP server (page, JSON API, MJPEG streams, token, CSP, viewer cap);
- ``static/``: the page itself (HTML, one script, one style sheet: no inline code, for a strict CSP).
"""
