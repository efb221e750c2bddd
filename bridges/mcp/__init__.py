"""The MCP bridge: every registry skill as an MCP tool, over streamable HTTP (bearer tokens) and stdio."""
