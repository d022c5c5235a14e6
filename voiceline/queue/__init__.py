"""The callback queue: how requests get in (intake) and how coordinators work them."""
