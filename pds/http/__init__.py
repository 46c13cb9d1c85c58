"""The HTTP edge: the Flask app (``create_app``), the request's vault and policies
(``context``), security, limits, one error renderer, and the three kinds of endpoint:
``oauth`` (the authorization server's endpoints), ``api`` (the business and auditor REST
API) and ``web`` (the owner's pages). Nothing below this package imports it."""
