"""Stage 1 of data generation (threadweaver.md section 4): an LLM rewrites correct sequential traces into
the parallel format in five steps. `parse.py` reads the LLM's replies, `cut.py` does the deterministic
steps (2: threads by line range; 3: apply edits; 5: assemble), `pipeline.py` runs it all over a chat
endpoint with journals, so that a killed run repeats no finished call."""
