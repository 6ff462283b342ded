"""Reading images, illumination correction, intensity scaling, and the one image-preparation path."""
