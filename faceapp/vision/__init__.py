"""Face finding and alignment: MediaPipe FaceLandmarker (with BlazeFace / Haar fallbacks), five points,
head pose, quality, and the similarity warp onto the 112 x 112 template. See docs/pipeline.md.

    from faceapp.vision.pipeline import FacePipeline, primary_face_index
    from faceapp.vision.align import TEMPLATE_112, align_face, similarity_transform
    from faceapp.vision.profile import align_turned, estimate_yaw    # turned heads (docs/pipeline.md, Profiles)
    from faceapp.vision.assets import resolve_asset
    from faceapp.vision.quality import QualityGate

(Submodules are imported explicitly so that importing this package does not load MediaPipe.)
"""
