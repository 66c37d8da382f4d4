"""Domain logic (no Flask): jobs, applications, interview feedback."""
