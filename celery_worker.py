"""celery -A celery_worker worker -Q QUEUE ...   (one pool per work class: README, production;
the queues and their pools are in ats_gateway/tasks/queues.py)"""

from ats_gateway import create_app

celery = create_app().extensions["celery"]
