"""Web Push: VAPID (RFC 8292), payload encryption (RFC 8291), what answers mean, and sending.

``node.push.webpush`` builds the request a push service expects (URL,
headers, encrypted body) and reads its status code; it never opens a
connection.  ``node.push.client`` sends such requests: a small HTTP/1.1
client with kept-alive connections per push service, bounded requests in
flight, and no connection to an address that is not public.  The push
worker (``node.workers.push``) drives both and records the results through
``node.services.push_delivery``.
"""
