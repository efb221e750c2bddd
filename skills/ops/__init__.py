"""Ops skills for the box's operator: diagnose SGLang, restart an MCP server, search the blog."""
