"""Dataset generators: pure functions of a spec and an explicit random generator."""
