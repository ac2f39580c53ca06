"""REST endpoints of the projects app: onboarding, reading, patching and removing projects."""
