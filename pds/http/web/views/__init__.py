"""One view per category of the owner's data, in the owner's language of things: money
in and out for transactions, a line per account for balances, usage charts for energy,
health records by type, cards for contacts, an agenda for events, a timeline for
locations and activity. ``pds.http.web.data`` picks the view by category (``VIEWS``);
a category without a view of its own is shown as a plain table of its fields
(:mod:`pds.http.web.views.table`).

Every view reads the same filters (:class:`pds.http.web.views.common.Filters`: dates,
source, search words, paging) and decrypts records on the server; the owner reading their
own data writes no audit entry.
"""
