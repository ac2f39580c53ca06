"""Identity and access: users (email is the identity), and later teams, memberships, application
tokens, sessions, SSO and the audit log."""
