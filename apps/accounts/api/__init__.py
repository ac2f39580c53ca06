"""REST endpoints of the accounts app: auth, users, teams, application tokens, audit."""
