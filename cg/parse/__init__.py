"""Stage 2, parse: bytes -> a Document (plain data, with the position of every value found
lazily). `read.load_file`/`read.load_text` pick the reader by the file's suffix."""
