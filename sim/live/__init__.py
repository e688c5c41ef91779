"""A simulated branch against a running box: ``python -m sim branch`` (docs/simulator.md).

Customers take tickets at the kiosk (the box's HTTP API) or by card (the simulated card
reader's pipe); tellers log in and press keys on the simulated RS485 keypads
(:mod:`sim.rs485_control`); customers rate on the evaluators. Who comes, when, for what,
and how they behave is drawn by :mod:`queueing`.
"""
