"""Web Push without I/O: VAPID (RFC 8292), payload encryption (RFC 8291), and what answers mean.

``node.push.webpush`` builds the request a push service expects (URL,
headers, encrypted body) and reads its status code; it never opens a
connection.  The push worker (``node.workers.push``) sends the requests
with httpx and records the results through ``node.services.notifications``.
"""
