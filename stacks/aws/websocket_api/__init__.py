"""API Gateway WebSocket API whose $connect route runs authgate's Lambda REQUEST authorizer."""
