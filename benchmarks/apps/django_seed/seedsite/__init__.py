"""Django "seed table" project: a JSON view, a SQLite query, a template and a slow-upstream view."""
