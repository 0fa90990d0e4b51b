"""What the gateway and the worker share, owned by neither: the agent config contract and the
log setup. Dependencies point one way: both services import this, it imports neither."""
