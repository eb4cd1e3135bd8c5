"""Your own detector, offline: local model packages under VIDEO_ASSETS_HOME/models/ (`video-assets model`).

- `package.py`: what a package folder is, the checks it must pass before inference loads it, and the
  content hash that goes into the workflow version;
- `importer.py`: an exported ONNX detector (Ultralytics-style YOLO) made into a package.
"""
