"""The operator console: server-rendered pages under /console on the service layer."""
