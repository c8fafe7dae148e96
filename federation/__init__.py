"""Node-to-node protocol NP/1.

Sans-IO cores (canonical, keys, envelope, signing) import only the standard
library and nacl; transport and storage live elsewhere.
"""
