"""The one error type services raise. Views show `message` next to `field`; the API returns `code`."""


class ServiceError(Exception):
    status = 400

    def __init__(self, code, message, field=None, status=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        if status is not None:
            self.status = status

    def as_dict(self):
        data = {"code": self.code, "message": self.message}
        if self.field:
            data["field"] = self.field
        return data


class NotFound(ServiceError):
    status = 404


class InsufficientStock(ServiceError):
    status = 409
