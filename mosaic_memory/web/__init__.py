"""Server-rendered pages for people: the OAuth consent page and the web UI at ``/ui`` (issue 10).

``session.py`` holds the sign-in session and CSRF helpers they share; ``pages.py`` renders a UI
page for the signed-in principal; ``endpoints.py`` the UI's routes; ``templates/`` the pages
(Jinja2, autoescaped) and ``static/`` our stylesheet and the vendored htmx (no external assets).
"""
