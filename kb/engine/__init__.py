"""Research and writing engines: what turns a PART into a knowledge file."""
