"""Limits people meet in the admin and in the API, defined once so both say the same."""

# Rows one bulk action may touch, in an admin action or an API bulk call: a mistaken filter stays a small mistake.
BULK_ACTION_LIMIT = 500

# Rows per page: admin lists, and API lists unless the caller asks for another `limit`.
ADMIN_PAGE_SIZE = 50
API_PAGE_SIZE = 100
