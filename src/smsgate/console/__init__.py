"""The web console: server-rendered pages for customers and operators, and the live
developer inbox. It talks to services (``deps.ConsoleDeps``), never to SQL."""
