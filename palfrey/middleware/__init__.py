"""ASGI middleware shipped with palfrey for users who compose their own application stack."""
