// What the Uppy test page gets: the published Uppy, unchanged, as a global.
import Uppy from '@uppy/core';
import AwsS3 from '@uppy/aws-s3';

window.UppyUnderTest = { Uppy, AwsS3 };
