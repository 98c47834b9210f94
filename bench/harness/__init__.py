"""The harness: dedicated servers, CPU accounting, load generation, reports and capacity."""
