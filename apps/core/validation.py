"""Request validation shared by every API view: a DRF serializer's validated data, or a 400 in
the error shape with per-field details."""


def validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
