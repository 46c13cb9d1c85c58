"""The HTTP edge: the Flask app (``app.create_app``, which registers every blueprint), the
request's vault and policies (``context``), security, limits, one error renderer
(``errors``), and the three kinds of endpoint: ``oauth`` (the authorization server's machine
endpoints, failures throttled by ``throttle``), ``api`` (the business and auditor REST API)
and ``web`` (the owner's pages). Nothing below this package imports it."""
