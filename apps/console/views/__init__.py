"""Console views: each module one page family; every view requires a signed-in user."""
