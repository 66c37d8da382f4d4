"""celery -A celery_worker worker"""

from ats_gateway import create_app

celery = create_app().extensions["celery"]
