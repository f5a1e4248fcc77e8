"""The whole service on loopback, for the e2e tests, the demo and the benchmarks.

Redis, the Lucca simulator, Elevo (scim2-server or simulators/fastscim.py, optionally behind
simulators/faultproxy.py), and the web and worker processes as the Procfile runs them, each on
a free port, supervised and stopped together.
"""
