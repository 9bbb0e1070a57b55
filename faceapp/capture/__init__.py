"""Getting pixels in: safe image decoding, frame sources (webcam, video file, image files) and synthetic
test videos. See docs/pipeline.md.

    from faceapp.capture.images import read_image, decode_image, list_images
    from faceapp.capture.sources import open_source
    from faceapp.capture.synthetic import write_video, face_video_frames
"""
