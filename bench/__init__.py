"""`make bench`: the performance measures of DESIGN §6 against a real local stack.

Everything runs on loopback through devstack.Stack (livekit-server, the gateway and the agent
worker as child processes), is bounded in count and time, and stops by itself.
"""
