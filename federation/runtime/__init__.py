"""NP/1 wired into a node: peers, this node's identity, signed requests, inbox and delivery.

Layers: the modules of ``federation`` itself are sans-IO protocol cores;
this package is where they meet the network (httpx, Quart) and the node
(``node.storage`` for federation tables, ``node.services`` for every rule of
who may do what).  ``node.services`` never imports it: domain code records
what to publish in its own transaction, and this package turns it into
signed activities.
"""
