"""The server floor: a bare WSGI application (no Django), served by the same gunicorn settings.

``python -m bench.scenarios.floor_closed_loop --wsgi`` measures it beside the Django and DRF floors, so
that the app CPU per request splits into gunicorn's share and the framework's.
"""

_BODY = b'{"status": "ok", "service": "crossings", "floor": true}'


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(_BODY)))])
    return [_BODY]
