"""Task backends behind the django.tasks API: database (here) and Hatchet (production)."""
