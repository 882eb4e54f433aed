"""Reserve an agent -> reach them -> bridge -> record -> talk: the step every flow shares."""
