"""Limits people meet in the admin and in the API, defined once so both say the same."""

# Rows one bulk action may touch, in an admin action or an API bulk call: a mistaken filter stays a small mistake.
BULK_ACTION_LIMIT = 500

# Rows per page: admin lists, and API lists unless the caller asks for another `limit`.
ADMIN_PAGE_SIZE = 50
API_PAGE_SIZE = 100

# Rows a list pages through (admin and console), 200 pages of 50: deeper than this a person narrows the filter
# instead. Counting and OFFSET both stop here, so a list over millions of rows answers as fast as one over ten
# thousand (an OFFSET of 100,000 rows alone takes longer than a whole page should).
LIST_ROW_LIMIT = 10_000
