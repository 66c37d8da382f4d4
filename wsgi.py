"""gunicorn wsgi:app"""

from ats_gateway import create_app

app = create_app()
