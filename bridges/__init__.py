"""Bridges to the outside: Matrix, MCP, the terminal. Depend on hub; hub never imports them."""
