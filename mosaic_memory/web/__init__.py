"""Server-rendered pages for people: the OAuth consent page now, the web UI later (issue 10).

``session.py`` holds the sign-in session and CSRF helpers they share; ``templates/`` the pages
(Jinja2, autoescaped, no external assets)."""
