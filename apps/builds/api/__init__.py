"""The published repository routes and the deliveries listing."""
