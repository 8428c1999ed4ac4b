"""What runs inside the image: the training entry points and the server launcher."""
