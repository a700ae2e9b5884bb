"""Models, graphs and checks shared by the test modules; a test module imports these, never
another test module."""
