"""Single sign-on for interactive users: the SAML service provider and its identity providers."""
